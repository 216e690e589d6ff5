from django.conf import settings
from django.db import models


class FormToken(models.Model):
    """Item 9: a one-time token rendered in a money form page (top-up,
    offline payment, fulfil, cancel, price change). Submitting the form
    consumes it in the same transaction as the service call, so a double
    click or the back button cannot record the money a second time."""

    token = models.CharField(max_length=64, unique=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    # The form page it was issued for: a token is good for that page only.
    path = models.CharField(max_length=300)
    created_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["user", "created_at"], name="formtoken_user_age")]

    def __str__(self) -> str:
        return f"form token for {self.path} ({'used' if self.used_at else 'open'})"
