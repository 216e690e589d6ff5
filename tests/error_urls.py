"""A URLconf for the error-page and control-character tests: the project's
URLs and handlers, plus views that fail on purpose and one that reads the
raw body after the middleware read the form."""

from django.core.exceptions import PermissionDenied, SuspiciousOperation
from django.http import HttpResponse, JsonResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from config.urls import handler400, handler403, handler404, handler500, urlpatterns

SECRET = "internal-detail-7f3a"


def _forbidden(request):
    raise PermissionDenied(SECRET)


def _suspicious(request):
    raise SuspiciousOperation(SECRET)


def _crash(request):
    raise RuntimeError(SECRET)


@csrf_exempt
def _echo_body(request):
    return JsonResponse(
        {"body": request.body.decode("latin-1"), "form": {k: v for k, v in request.POST.items()}}
    )


def _ok(request, word):
    return HttpResponse("ok")


urlpatterns = [
    path("test-errors/forbidden/", _forbidden),
    path("test-errors/suspicious/", _suspicious),
    path("test-errors/crash/", _crash),
    path("test-errors/echo/", _echo_body),
    path("test-errors/ok/<str:word>/", _ok),
    *urlpatterns,
]

__all__ = ["handler400", "handler403", "handler404", "handler500", "urlpatterns"]
