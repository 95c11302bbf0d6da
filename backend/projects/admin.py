from django.contrib import admin

from .models import LabelClass, Membership, Project


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ["user"]


@admin.register(Project)
class ProjectAdmin(admin.ModelAdmin):
    list_display = ["id", "name", "gallery_version", "created_at"]
    search_fields = ["name"]
    inlines = [MembershipInline]
    readonly_fields = ["gallery_version", "version", "created_at", "updated_at"]


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["id", "project", "user", "role"]
    list_filter = ["role"]
    autocomplete_fields = ["user", "project"]


@admin.register(LabelClass)
class LabelClassAdmin(admin.ModelAdmin):
    list_display = ["id", "project", "name", "color", "kind", "active"]
    list_filter = ["kind", "active"]
    search_fields = ["name"]
    readonly_fields = ["version"]
