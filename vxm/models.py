"""What the product itself keeps outside any app: failed login attempts."""

from django.db import models
from django.utils import timezone


class LoginAttempt(models.Model):
    """A login attempt that failed, or is being checked right now (vxm/auth.py).

    Rows older than the rate limit's window are deleted as new attempts come in,
    so the table stays as small as the attacks of the last few minutes.
    """

    # Normalized (stripped, case-folded) as typed: it need not be a real user.
    username = models.CharField(max_length=150)
    address = models.GenericIPAddressField()
    at = models.DateTimeField(default=timezone.now)
    # The id of a browser this username has logged in from before (its signed
    # cookie, vxm/auth.py), or "" for any other browser: the two are counted apart.
    device = models.CharField(max_length=32, blank=True, default="")

    class Meta:
        indexes = [
            models.Index(fields=["device", "at"], name="loginattempt_device_at"),
            models.Index(fields=["username", "at"], name="loginattempt_username_at"),
            models.Index(fields=["address", "at"], name="loginattempt_address_at"),
            models.Index(fields=["at"], name="loginattempt_at"),
        ]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.username} from {self.address}"


class UserPreference(models.Model):
    """What a person chose for themselves, kept on their account so it follows
    them to every browser: for now the language of the panel (vxm/language.py).
    No row, or an empty language, means "not chosen": the browser's language."""

    user = models.OneToOneField("auth.User", on_delete=models.CASCADE, related_name="preference")
    language = models.CharField(max_length=10, blank=True, default="")

    def __str__(self) -> str:
        return f"{self.user_id}: {self.language or '-'}"
