from django.apps import AppConfig


class ErpConfig(AppConfig):
    name = "erp"
    verbose_name = "Integraciones ERP"

    def ready(self) -> None:
        # Registers the security checks that `vxm check --deploy` runs.
        from erp import checks  # noqa: F401
