"""``cti demo`` runs the contact script: an agent who answers an inbound call of the demo gets the shipped Russian
script beside the card, with the lab's masters to pass the call to; the CLI's config file carries the same
``[scripts]``, so ``cti check-config`` reads the scripts the demo runs."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from companion.config import load_config
from tests.cli_runner import cti
from tests.test_demo import DemoProcess
from tests.ui_bridge.wsclient import WsClient


async def test_an_agent_answering_a_demo_call_gets_the_car_service_script_with_the_labs_masters(
        tmp_path: Path) -> None:
    folder = tmp_path / "demo"
    # 01-direct: a customer calls 103 (maria), who answers after 3 s.
    demo = await DemoProcess.start("01-direct", "--speed", "4", "--http-port", "0", "--folder", str(folder))
    try:
        said = await demo.line(r"Contact script: car-service from .*examples/scripts")
        assert "Дмитрий Соколов (104), Елена Попова (105)" in said.string
        url = (await demo.line(r"Web panel: (http://127\.0\.0\.1:\d+)/"))[1]
        env = SimpleNamespace(url=url, ws_url=url.replace("http", "ws") + "/ws",
                              users={"maria": ("demo-103", "agent", "103", None)})
        maria = await WsClient.connect(env, "maria")  # type: ignore[arg-type]
        try:
            pushed = await maria.wait_for("script.run", timeout=60)
            run = pushed["run"]
            assert (run["script"], run["agent"], run["channel"], run["step"]["id"]) == (
                "car-service", "103", "phone", "reason")
            assert "Интересуется ремонтом — частник" in [o["label"] for o in run["step"]["options"]]
            reply = await maria.request({"type": "script.answer", "run": run["id"], "step": "reason",
                                         "answer": {"option": "repair_private"}})
            assert reply["type"] == "reply", reply
            reply = await maria.request({"type": "script.answer", "run": run["id"], "step": "private_client",
                                         "answer": {"new": {"make": "Шкода", "plate": "а123вс77"}}})
            masters = reply["data"]["run"]["step"]["employees"]
            assert [(e["id"], e["name"], e["extension"]) for e in masters] == [
                ("dmitry", "Дмитрий Соколов", "104"), ("elena", "Елена Попова", "105")]
        finally:
            await maria.close()
    finally:
        await demo.stop()
    config = folder / "cti.toml"
    settings = load_config(config)
    assert settings.scripts.default == "car-service" and settings.scripts.folder is not None
    assert [e.extension for e in settings.scripts.employees["masters"]] == ["104", "105"]
    cti("check-config", "--config", str(config))
