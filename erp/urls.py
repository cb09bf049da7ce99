from django.urls import path

from erp import cancel_views, held_views, schedule_views, views

app_name = "erp"
urlpatterns = [
    path("erp/", views.integrations, name="integrations"),
    path("erp/status/", views.status, name="status"),
    path("erp/settings/<slug:kind>/", views.connection_settings, name="settings"),
    path("erp/verify/", views.verify, name="verify"),
    path("erp/update/", views.update, name="update"),
    path("erp/schedule/", schedule_views.save_schedule, name="schedule"),
    path("erp/runs/", views.runs, name="runs"),
    path("erp/runs/<int:run_id>/", views.run_detail, name="run"),
    path("erp/runs/<int:run_id>/cancel/", cancel_views.cancel_run, name="cancel"),
    path("erp/runs/<int:run_id>/undo/", views.run_undo, name="run_undo"),
    path("erp/preview/", held_views.preview, name="preview"),
    path("erp/guards/", held_views.guards, name="guards"),
    path("erp/runs/<int:run_id>/apply/", held_views.run_apply, name="run_apply"),
    path("erp/runs/<int:run_id>/discard/", held_views.run_discard, name="run_discard"),
    # One view per report, the format fixed by the URL: a link is a file to open.
    path(
        "erp/runs/<int:run_id>/changes.csv",
        views.run_changes_report,
        {"fmt": "csv"},
        name="run_changes_csv",
    ),
    path(
        "erp/runs/<int:run_id>/changes.xlsx",
        views.run_changes_report,
        {"fmt": "xlsx"},
        name="run_changes_xlsx",
    ),
    path(
        "erp/runs/<int:run_id>/issues.csv",
        views.run_issues_report,
        {"fmt": "csv"},
        name="run_issues_csv",
    ),
    path(
        "erp/runs/<int:run_id>/issues.xlsx",
        views.run_issues_report,
        {"fmt": "xlsx"},
        name="run_issues_xlsx",
    ),
]
