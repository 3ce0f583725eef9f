"""The program's rules and staff adjustments of points."""

from django.contrib import admin

from loyalty.models import Program


@admin.register(Program)
class ProgramAdmin(admin.ModelAdmin):
    def has_add_permission(self, request):
        return not Program.objects.exists()

    def has_delete_permission(self, request, obj=None):
        return False
