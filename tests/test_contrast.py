"""Every text colour of the product's stylesheet is readable: WCAG AA's 4.5:1.

The pairs come from vxm/static/vxm/vxm.css itself, so a colour changed there is
checked without touching this test: a rule that sets both `color` and a solid
`background` is checked as that pair; a rule that sets only `color` is checked
against the background of its ancestor's rule (`.chip .count` on `.chip`), or,
without one, against white and the page background. Variables (`var(--ok)`)
are read from `:root`. Gradients and `inherit` are not colours to check.
"""

import re
from pathlib import Path

import pytest

CSS = Path(__file__).resolve().parent.parent / "vxm" / "static" / "vxm" / "vxm.css"
AA = 4.5
HEX = re.compile(r"^#(?:[0-9a-fA-F]{3}){1,2}$")


def luminance(colour: str) -> float:
    digits = colour.lstrip("#")
    if len(digits) == 3:
        digits = "".join(d * 2 for d in digits)
    channels = [int(digits[i : i + 2], 16) / 255 for i in (0, 2, 4)]
    r, g, b = (c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a: str, b: str) -> float:
    light, dark = sorted((luminance(a), luminance(b)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def rules(css: str) -> list[tuple[str, dict[str, str]]]:
    """(selector, declarations) of every rule, @media blocks included."""
    css = re.sub(r"/\*.*?\*/", "", css, flags=re.S)
    found = []
    for selectors, body in re.findall(r"([^{}]+)\{([^{}]*)\}", css):
        declarations = {}
        for declaration in body.split(";"):
            name, _, value = declaration.partition(":")
            if value.strip():
                declarations[name.strip()] = value.strip().removesuffix("!important").strip()
        for selector in selectors.split(","):
            found.append((" ".join(selector.split()), declarations))
    return found


def resolve(value: str, variables: dict[str, str]) -> str | None:
    """A solid colour as #hex, or None (gradients, inherit, several layers)."""
    match = re.fullmatch(r"var\((--[\w-]+)\)", value)
    if match:
        value = variables.get(match.group(1), "")
    if value in {"white", "#fff", "#ffffff"}:
        return "#ffffff"
    return value if HEX.match(value) else None


def pairs(css: str) -> list[tuple[str, str, str]]:
    """(selector, text colour, background) for every pair the stylesheet makes."""
    parsed = rules(css)
    variables = next(d for s, d in parsed if s == ":root")
    backgrounds: dict[str, str] = {}
    for selector, declarations in parsed:
        background = declarations.get("background-color") or declarations.get("background")
        solid = resolve(background, variables) if background else None
        if solid:
            backgrounds[selector] = solid
    page = resolve(variables["--bg"], variables)
    assert page is not None
    found = []
    for selector, declarations in parsed:
        colour = resolve(declarations.get("color", ""), variables)
        if colour is None:
            continue
        if selector in backgrounds:
            found.append((selector, colour, backgrounds[selector]))
            continue
        ancestor = selector.rsplit(" ", 1)[0] if " " in selector else ""
        if ancestor in backgrounds:
            found.append((selector, colour, backgrounds[ancestor]))
        else:
            found.append((selector, colour, "#ffffff"))
            found.append((selector, colour, page))
    return found


def test_the_stylesheet_is_parsed_into_the_pairs_that_matter() -> None:
    # Guards the parser itself: the badges, the flash messages and the buttons.
    found = {(s, c, b) for s, c, b in pairs(CSS.read_text(encoding="utf-8"))}
    selectors = {s for s, _, _ in found}
    for selector in (".badge.ok", ".badge.warn", ".badge.bad", ".badge.queued", ".muted", "a"):
        assert selector in selectors
    assert ('.chip[aria-current="true"] .count', "#d5dde5", "#1d2733") in found
    assert len(found) > 20


@pytest.mark.parametrize(
    ("selector", "text", "background"),
    sorted(set(pairs(CSS.read_text(encoding="utf-8")))),
)
def test_text_colour_reaches_wcag_aa(selector: str, text: str, background: str) -> None:
    ratio = contrast(text, background)
    assert ratio >= AA, f"{selector}: {text} on {background} is {ratio:.2f}:1, under {AA}:1"


def test_contrast_matches_wcag_examples() -> None:
    assert contrast("#000000", "#ffffff") == pytest.approx(21)
    assert contrast("#777777", "#ffffff") == pytest.approx(4.48, abs=0.01)
    # The green badge before it was darkened.
    assert contrast("#17803d", "#e8f5ec") == pytest.approx(4.46, abs=0.01)
