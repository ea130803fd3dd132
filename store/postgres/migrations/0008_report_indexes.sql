-- 0008: the indexes the reports read, as the SQLite store's 0013 (issue 13: store/reports.py): the calls by direction
-- and outcome in the journal's order with the agent who answered; the contacts by time with every column the
-- contact reports group or filter by; the register's entries and the agents' misses by time with what their report
-- counts. Each report's period is one range of an index, read without the table (an index-only scan once the table is
-- vacuumed).
CREATE INDEX calls_report ON calls (direction, outcome, started_at, linkedid, pbx, answered_by);
CREATE INDEX contact_register_report ON contact_register (at, pbx, agent, channel, client_kind, reason, is_repeat,
                                                          employee, request_at, booking_at, visit_at);
CREATE INDEX missed_report ON missed (missed_at, pbx, reason, closed_by, closed_at);
CREATE INDEX agent_misses_report ON agent_misses (rang_at, pbx, agent, reason);
