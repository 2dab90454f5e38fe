"""Database constraints that read as sentences when a form would break them."""

from django.core.exceptions import ValidationError
from django.db import router


class ConstraintMessages:
    """Model mixin: a violated constraint is reported with its sentence from `constraint_messages`.

    Without it Django says "Constraint “<name>” is violated." for a check or conditional unique
    constraint. The sentence would sit best on the constraint (`violation_error_message`), but that
    changes the migration state of every table that has one; this leaves the schema as it is.
    """

    constraint_messages: dict = {}

    def validate_constraints(self, exclude=None):
        # Django's own loop (Model.validate_constraints), with the sentence put in for the name.
        using = router.db_for_write(self.__class__, instance=self)
        errors = {}
        for model_class, constraints in self.get_constraints():
            for constraint in constraints:
                try:
                    constraint.validate(model_class, self, exclude=exclude, using=using)
                except ValidationError as violation:
                    sentence = self.constraint_messages.get(constraint.name)
                    error = ValidationError(sentence, code=constraint.name) if sentence else violation
                    fields = getattr(constraint, "fields", ())
                    # A constraint on one field is said next to it, as Django does for unique ones.
                    if len(fields) == 1 and (sentence or getattr(violation, "code", None) == "unique"):
                        error = ValidationError({fields[0]: error})
                    errors = error.update_error_dict(errors)
        if errors:
            raise ValidationError(errors)
