from .roles import roles_of


def roles(request):
    held = roles_of(getattr(request, "user", None))
    unread = 0
    if held:
        unread = request.user.notifications.filter(read_at__isnull=True).count()
    return {"roles": {role.value for role in held}, "unread_notifications": unread}
