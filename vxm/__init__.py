"""VentasxMayor: the Django project (settings, URLs) and the `vxm` command line."""
