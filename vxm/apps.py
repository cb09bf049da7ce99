from django.apps import AppConfig


class VxmConfig(AppConfig):
    name = "vxm"
    verbose_name = "VentasxMayor"

    def ready(self) -> None:
        # The login signal's receiver, which applies the account's language.
        from vxm import language  # noqa: F401
