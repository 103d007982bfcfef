from django.contrib import admin

from .models import Heartbeat, Notification, StaffProfile, WorkerPing


@admin.register(StaffProfile)
class StaffProfileAdmin(admin.ModelAdmin):
    list_display = ("user", "time_zone")
    search_fields = ("user__username", "user__email")


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
    list_display = ("recipient", "kind", "title", "created_at", "read_at")
    list_filter = ("kind",)
    search_fields = ("title", "recipient__username")


admin.site.register(WorkerPing)
admin.site.register(Heartbeat)
