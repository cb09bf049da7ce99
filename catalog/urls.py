from django.urls import path

from catalog import views

app_name = "catalog"
urlpatterns = [
    path("", views.item_list, name="list"),
    path("items/<int:pk>/", views.item_detail, name="item"),
    path("items/<int:pk>/lock/", views.item_lock, name="item_lock"),
    path("import/", views.item_import, name="import"),
    path("imports/<int:pk>/", views.import_detail, name="import_detail"),
    path("export/", views.item_export, name="export"),
]
