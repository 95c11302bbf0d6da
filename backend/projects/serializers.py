from rest_framework import serializers

from backend.core.strict import StrictFieldsMixin

from .models import LabelClass, Membership, Project, Role


DESCRIPTION_MAX = 5_000


class ProjectSerializer(StrictFieldsMixin, serializers.ModelSerializer):
    my_role = serializers.SerializerMethodField()

    class Meta:
        model = Project
        fields = [
            "id", "name", "description", "prompts", "box_threshold", "text_threshold", "nms_iou",
            "unknown_threshold", "min_margin", "top_k", "unique_classes_per_image",
            "engine", "learn_from_reviews", "gallery_version", "created_at", "updated_at", "version", "my_role",
        ]
        read_only_fields = ["id", "gallery_version", "created_at", "updated_at", "version", "my_role"]
        # Every project list and read carries it: a 1 MB description went out with each of them.
        extra_kwargs = {"description": {"max_length": DESCRIPTION_MAX, "error_messages": {
            "max_length": f"At most {DESCRIPTION_MAX:,} characters: keep the description short (it shows on every project list)."}}}

    def get_my_role(self, project) -> str | None:
        membership = self.context.get("membership")
        if membership is not None and membership.project_id == project.pk:
            return membership.role
        roles = self.context.get("roles") or {}
        return roles.get(project.pk)

    def validate_name(self, value):
        """A name of only invisible characters (a zero-width space) made an invisible project."""
        return clean_class_name(value, "project", new=_renamed(self.instance, value))

    def validate_prompts(self, value):
        if not isinstance(value, list) or not value or not all(isinstance(p, str) and p.strip() for p in value):
            raise serializers.ValidationError("Give at least one non-empty text prompt.")
        if len(value) > 20 or any(len(p) > 200 for p in value):
            raise serializers.ValidationError("At most 20 prompts of at most 200 characters.")
        from backend.jobs.serializers import words_only

        return words_only(value)

    def validate(self, attrs):
        """Prompts that cannot fit the engine's text window failed every image of every job."""
        attrs = super().validate(attrs)
        if "prompts" in attrs or "engine" in attrs:
            from backend.jobs.prompt_window import prompt_window_error

            engine = attrs.get("engine") or getattr(self.instance, "engine", None) or Project._meta.get_field("engine").get_default()
            problem = prompt_window_error(attrs.get("prompts", getattr(self.instance, "prompts", None)), engine)
            if problem:
                raise serializers.ValidationError({"prompts": problem})
        return attrs


class ProjectUpdateSerializer(ProjectSerializer):
    version = serializers.IntegerField()

    class Meta(ProjectSerializer.Meta):
        read_only_fields = ["id", "gallery_version", "created_at", "updated_at", "my_role"]
        # Moved by a gallery change, not by the project's version (core/strict.py).
        echo_derived = {"gallery_version": "counter"}


class VersionSerializer(serializers.Serializer):
    version = serializers.IntegerField()


class MembershipSerializer(serializers.ModelSerializer):
    username = serializers.CharField(source="user.username", read_only=True)

    class Meta:
        model = Membership
        fields = ["id", "username", "role", "created_at", "version"]


class MembershipCreateSerializer(StrictFieldsMixin, serializers.Serializer):
    username = serializers.CharField(max_length=150)
    role = serializers.ChoiceField(choices=Role.choices)


class MembershipUpdateSerializer(StrictFieldsMixin, serializers.Serializer):
    role = serializers.ChoiceField(choices=Role.choices)
    version = serializers.IntegerField(help_text="The membership's version you last read; a newer one is a 409.")

    class Meta:
        echo_of = MembershipSerializer  # the member as read may be sent back (core/strict.py)


class NewUserMembershipSerializer(StrictFieldsMixin, serializers.Serializer):
    """A new account (instance admins only), added to this project at once."""

    username = serializers.CharField(max_length=150)
    role = serializers.ChoiceField(choices=Role.choices)


class NewUserMembershipResultSerializer(MembershipSerializer):
    one_time_password = serializers.CharField(read_only=True, help_text="Shown once; the user sets their own at first sign-in.")

    class Meta(MembershipSerializer.Meta):
        fields = [*MembershipSerializer.Meta.fields, "one_time_password"]


def clean_class_name(value: str, what: str = "class", *, new: bool = True) -> str:
    """One spelling per name: compatibility forms folded (full-width "ｂｉｒｄ" is "bird"),
    invisible characters (a zero-width space, a filler) dropped, runs of spaces made one. Such
    lookalikes made visually identical classes beside each other. Control characters (a terminal
    colour code reached CLI output and exports) and names of combining marks alone are refused."""
    from backend.core.text import control_character, lookalike_problem, one_spelling, shows_something

    cleaned = one_spelling(value)
    if not cleaned or not shows_something(cleaned):
        raise serializers.ValidationError(f"A {what} needs a name.")
    bad = control_character(cleaned)
    if bad:
        raise serializers.ValidationError(f"A {what} name cannot hold control characters ({bad}).")
    problem = lookalike_problem(cleaned, what) if new else None  # a name already there is matched, not refused
    if problem:
        raise serializers.ValidationError(problem)
    # Measured once folded: 7 x U+FDFA fold to 126 characters, which passed the field's check of
    # the name as sent and failed the INSERT with an HTML 500 (black-box round 17).
    limit = (Project if what == "project" else LabelClass)._meta.get_field("name").max_length
    if len(cleaned) > limit:
        raise serializers.ValidationError(f"A {what} name has at most {limit} characters: shorten it (written "
                                          f"in one spelling it has {len(cleaned)}).")
    return cleaned


# DRF said "Ensure this field has no more than 120 characters." under the field's name.
NAME_TOO_LONG = "A class name has at most {max_length} characters: shorten it."


class LabelClassSerializer(StrictFieldsMixin, serializers.ModelSerializer):
    exemplar_count = serializers.IntegerField(read_only=True, default=0)
    # A plain id, resolved by the service within the project (a related field would look the id up
    # across all projects and tell a foreign class apart from a missing one).
    parent = serializers.IntegerField(source="parent_id", allow_null=True, required=False)

    class Meta:
        model = LabelClass
        fields = ["id", "name", "color", "kind", "parent", "active", "created_at", "version", "exemplar_count"]
        read_only_fields = ["id", "created_at", "version", "exemplar_count"]
        extra_kwargs = {"name": {"error_messages": {"max_length": NAME_TOO_LONG}}}

    def validate_name(self, value):
        return clean_class_name(value)


class LabelClassUpdateSerializer(StrictFieldsMixin, serializers.ModelSerializer):
    version = serializers.IntegerField()
    parent = serializers.IntegerField(source="parent_id", allow_null=True, required=False)

    class Meta:
        model = LabelClass
        fields = ["name", "color", "kind", "parent", "active", "version"]
        extra_kwargs = {f: {"required": False} for f in ["name", "color", "kind", "active"]}
        extra_kwargs["name"]["error_messages"] = {"max_length": NAME_TOO_LONG}
        echo_of = LabelClassSerializer  # the class as read may be sent back (core/strict.py)
        echo_derived = {"exemplar_count": "count"}  # a gallery change does not move the class's version

    def validate_name(self, value):
        # Look-alike letters are checked by services.update_class, against the class's own name (one
        # named before the rule could not be saved unchanged).
        return clean_class_name(value, new=False)


def _renamed(instance, value: str) -> bool:
    """`value` is another name than the object's own."""
    from backend.core.text import one_spelling

    return instance is None or one_spelling(value).lower() != (instance.name or "").lower()
