from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class GatewaysConfig(AppConfig):
    name = "gateways"
    verbose_name = _("Payment providers")

    def ready(self) -> None:
        from billing import payments
        from billing.reconcile import register_check

        from . import base, reconcile
        from .alipay import AlipayProvider
        from .sandbox import hmac_provider, hmac_verifier
        from .wechatpay import WeChatPayProvider

        for provider in (AlipayProvider(), WeChatPayProvider()):
            base.register(provider)
            payments.register_verifier(provider.code, provider.verify, provider.configured)
        # The sandbox and the tests' HMAC providers, one per configured secret.
        payments.register_fallback(hmac_verifier)
        base.register_fallback(hmac_provider)
        register_check(reconcile.check_provider_money)
