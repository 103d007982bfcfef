"""Mail configuration API routes, included by the project under ``api/``."""

from rest_framework.routers import SimpleRouter

from . import api

app_name = "inbound_api"

router = SimpleRouter()
router.register("mailboxes", api.MailboxViewSet, basename="mailbox")
router.register("inbound-messages", api.InboundMessageViewSet, basename="inbound-message")

urlpatterns = router.urls
