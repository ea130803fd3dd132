-- 0013: the indexes the reports read (issue 13: store/reports.py, cti/reports.py), so that a report costs the rows of
-- its period and reads no table row for its counts, on a year of 2,000,000 calls and 1,500,000 contacts.
--
-- `calls_report`: the calls by direction and outcome, in the journal's order, with the agent who answered: a period's
-- answered inbound calls (the "PBX vs registered" report's) are one range of it, read forwards for the counts and
-- backwards for the newest calls with no contact, off the index alone. (Not a partial index of those calls only:
-- SQLite 3.40 reads a table row per entry of a partial index to check the columns of its condition.)
CREATE INDEX calls_report ON calls (direction, outcome, started_at, linkedid, pbx, answered_by);

-- `contact_register_report`: every column the contact statistics, the funnel and the phone contacts group or filter
-- by, after the contact's time: a period's contacts are one range, read off the index alone.
CREATE INDEX contact_register_report ON contact_register (at, pbx, agent, channel, client_kind, reason, is_repeat,
                                                          employee, request_at, booking_at, visit_at);

-- The missed calls report: the register's entries of a period by reason and how they were closed, with the time to
-- call back; the agents' misses of a period by agent and reason.
CREATE INDEX missed_report ON missed (missed_at, pbx, reason, closed_by, closed_at);
CREATE INDEX agent_misses_report ON agent_misses (rang_at, pbx, agent, reason);
