from django.db.models import QuerySet

from .models import LabelClass, Membership, Project


def projects_for_user(user) -> QuerySet[Project]:
    return Project.objects.filter(memberships__user=user).distinct()


def memberships_of_project(project: Project) -> QuerySet[Membership]:
    return Membership.objects.filter(project=project).select_related("user")


def classes_of_project(project: Project) -> QuerySet[LabelClass]:
    return LabelClass.objects.filter(project=project)


def get_class(project: Project, class_id: int) -> LabelClass:
    from backend.core.errors import NotFound

    label_class = LabelClass.objects.filter(project=project, pk=class_id).first()
    if label_class is None:
        raise NotFound(f"Class {class_id} not found in this project.")
    return label_class
