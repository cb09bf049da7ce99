"""Forms of the catalog pages. Values are parsed by `catalog.quantities`, like the
CSV import's, so a price typed by hand and one in a file follow the same rules."""

from decimal import Decimal
from typing import Any

from django import forms
from django.core.files.uploadedfile import UploadedFile
from django.utils.formats import number_format
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from catalog.csv_import import MAX_FILE_BYTES
from catalog.quantities import QuantityError, parse_price, parse_stock


class SearchForm(forms.Form):
    STOCK_CHOICES = [
        ("", _("Todo el stock")),
        ("out", _("Sin stock")),
        ("low", _("Stock bajo")),
        # Not a stock level, but the same select: a short toolbar.
        ("locked", _("Bloqueados frente al ERP")),
    ]
    q = forms.CharField(required=False, max_length=200, label="Buscar")
    stock = forms.ChoiceField(required=False, choices=STOCK_CHOICES, label="Stock")
    # ?sku=ambiguous: the items whose SKU shares its key with another's (the ERP
    # page's health links here).
    sku = forms.ChoiceField(required=False, choices=[("", ""), ("ambiguous", "ambiguous")])
    # The pager's cursors: the id of the item the page starts after (or ends
    # before). An id, not the SKU: nothing in a SKU can be lost on the way.
    after = forms.IntegerField(required=False, min_value=1, max_value=2**63 - 1)
    before = forms.IntegerField(required=False, min_value=1, max_value=2**63 - 1)


class ItemEditForm(forms.Form):
    """Stock and price of one item.

    `seen_stock` and `seen_price` carry the values the admin saw when the page was
    drawn: only a field the admin actually changed is applied, so saving the form
    does not undo a price the ERP updated in the meantime.
    """

    stock = forms.CharField(
        label=_("Stock"),
        max_length=30,
        error_messages={
            "required": _("Ingresá el stock."),
            "max_length": _("El stock es demasiado largo: ingresá unidades, por ejemplo 1500."),
        },
        widget=forms.TextInput(attrs={"inputmode": "numeric", "autocomplete": "off"}),
        help_text=_("Unidades enteras, 0 o más."),
    )
    wholesale_price = forms.CharField(
        label=_("Precio mayorista"),
        max_length=40,
        error_messages={
            "required": _("Ingresá el precio."),
            "max_length": _("El precio es demasiado largo: ingresalo como 18250,50."),
        },
        widget=forms.TextInput(attrs={"inputmode": "decimal", "autocomplete": "off"}),
        help_text=_("Con coma o punto para los centavos, por ejemplo 18250,50."),
    )
    seen_stock = forms.CharField(required=False, widget=forms.HiddenInput)
    seen_price = forms.CharField(required=False, widget=forms.HiddenInput)

    def clean_stock(self) -> int:
        try:
            return parse_stock(self.cleaned_data["stock"])
        except QuantityError as e:
            raise forms.ValidationError(str(e)) from None

    def clean_wholesale_price(self) -> Decimal:
        try:
            return parse_price(self.cleaned_data["wholesale_price"])
        except QuantityError as e:
            raise forms.ValidationError(str(e)) from None

    def requested(self) -> tuple[int | None, Decimal | None]:
        """(new stock, new price) to apply; None for a field the admin left as seen."""
        stock: int = self.cleaned_data["stock"]
        price: Decimal = self.cleaned_data["wholesale_price"]
        return (
            None if _same(parse_stock, self.cleaned_data.get("seen_stock"), stock) else stock,
            None if _same(parse_price, self.cleaned_data.get("seen_price"), price) else price,
        )


def _same(parse: Any, seen: str | None, value: object) -> bool:
    if not seen:
        return False
    try:
        return bool(parse(seen) == value)
    except QuantityError:
        return False


class ImportForm(forms.Form):
    file = forms.FileField(
        label=_("Archivo CSV"),
        error_messages={
            "required": _("Elegí un archivo CSV."),
            "empty": _("El archivo está vacío."),
        },
    )

    def clean_file(self) -> UploadedFile:
        upload: UploadedFile = self.cleaned_data["file"]
        if upload.size is not None and upload.size > MAX_FILE_BYTES:
            size_mb = number_format(round(upload.size / (1024 * 1024), 1), 1)
            raise forms.ValidationError(
                gettext(
                    "El archivo pesa %(size)s MB y el máximo es %(max)s MB. "
                    "Dividilo en partes y subilas de a una."
                )
                % {"size": size_mb, "max": MAX_FILE_BYTES // (1024 * 1024)}
            )
        return upload
