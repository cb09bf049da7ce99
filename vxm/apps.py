from django.apps import AppConfig


class VxmConfig(AppConfig):
    name = "vxm"
    verbose_name = "VentasxMayor"
