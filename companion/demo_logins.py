"""The demo's logins and the lab PBX's agents: plain data, so ``cti demo --help`` can list them without loading the
demo (a command's help must not import the daemon: tests/test_cli_lazy.py)."""

from __future__ import annotations

#: The panel's demo logins: name → (password, role, extension). The lab PBX's agents are 101..106.
DEMO_LOGINS: dict[str, tuple[str, str, str | None]] = {
    "anna": ("demo-101", "agent", "101"),
    "oleg": ("demo-102", "agent", "102"),
    "maria": ("demo-103", "agent", "103"),
    "dmitry": ("demo-104", "agent", "104"),
    "elena": ("demo-105", "agent", "105"),
    "admin": ("demo-admin", "admin", None),
    "qa": ("demo-qa", "qa", None),
}
LAB_AGENTS = {"101": "Анна Смирнова", "102": "Олег Петров", "103": "Мария Кузнецова", "104": "Дмитрий Соколов",
              "105": "Елена Попова", "106": "Supervisor Smith"}


def login_lines() -> list[str]:
    """One line per demo login: name, password and who it is (as the demo prints them and its help lists them)."""
    lines = []
    for name, (password, role, ext) in DEMO_LOGINS.items():
        what = f"agent {ext} ({LAB_AGENTS[ext]})" if ext else role
        lines.append(f"{name:<7} / {password:<11} {what}")
    return lines
