"""`__in` on an integer column ignores values no row can hold, as Django's exact lookup already does.

For an integer beyond the column, `exact` answers "no row" (IntegerFieldOverflow); `in` raises:
ValueError for text that is no number, OverflowError on SQLite beyond 64 bits. Forms filter
`pk__in` with what a request sent (the admin's autocomplete and filter_horizontal widgets), so a
hand-made POST with `client=abc` or `users=99999999999999999999999` was a server error.
"""

from django.db.models import IntegerField
from django.db.models.lookups import In

# The widest integer any supported database stores.
WIDEST = range(-(2**63), 2**63)


@IntegerField.register_lookup
class IntegerIn(In):
    def get_prep_lookup(self):
        if self.rhs_is_direct_value() and isinstance(self.rhs, (list, tuple, set, frozenset)):
            self.rhs = [value for value in self.rhs if self._can_be_stored(value)]
        return super().get_prep_lookup()

    def _can_be_stored(self, value) -> bool:
        if value is None or hasattr(value, "resolve_expression"):
            return True  # None is left out by In itself; expressions are the database's to judge
        try:
            number = self.lhs.output_field.get_prep_value(value)
        except (TypeError, ValueError):
            return False
        return number in WIDEST
