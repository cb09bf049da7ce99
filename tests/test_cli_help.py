"""`vxm --help` shows the product's commands first, each with what it does, and
Django's after them."""

import pytest

from vxm.cli import main

PRODUCT = ["store", "user", "catalog", "erp", "scheduler", "check", "demo", "prune"]


@pytest.mark.parametrize("argv", [["vxm"], ["vxm", "--help"], ["vxm", "-h"], ["vxm", "help"]])
def test_the_products_commands_come_first_with_a_description(argv, capsys):
    main(argv)
    out = capsys.readouterr().out
    lines = out.splitlines()
    ours = lines.index("Comandos de VentasxMayor:")
    django = lines.index("Comandos de Django para operar:")
    assert ours < django
    # Entries start two spaces in; a long description goes on indented further.
    entries = [line for line in lines[ours + 1 : django] if line[:3].strip() and line[:2] == "  "]
    assert [line.split()[0] for line in entries] == PRODUCT
    for line in entries:
        assert len(line.split(None, 1)) == 2, f"no description: {line!r}"
    assert "Importa y exporta el catálogo de una tienda." in out
    # Django's come after, the ones an operator needs first of them.
    for command in ("migrate", "db_worker", "collectstatic", "createsuperuser", "dumpdata"):
        position = out.index(command)
        assert position > out.index("Comandos de Django para operar:"), command
    assert "[django] " in out and "dumpdata" in out


def test_help_on_one_command_is_still_djangos(capsys):
    main(["vxm", "help", "erp"])
    out = capsys.readouterr().out
    assert out.startswith("usage: vxm erp")
