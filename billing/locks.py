"""Row locks in one order for the whole project, so that two transactions never wait for each other.

A transaction that locks rows of more than one of these models takes them in this order, and the
rows of one model in ascending primary key:

    1. billing.Service                 what is acted on (status changes, payment of an order)
    2. billing.Payment                 a top-up being confirmed
    3. billing.Client                  the ledger: a client's entries are written one at a time
    4. provisioning.Operation          the panel action of a service (inserting one counts: a
                                       unique constraint allows one pending operation per service)
    5. provisioning.OperationAttempt   the claim of one worker on an operation

Once a transaction holds a lock further down the list it takes none further up: e.g. staff's Retry
locks the service before the operation, as a new request does, and the operation runner locks the
service and the operation before it finishes its attempt. A single conditional UPDATE that commits
on its own (claiming an operation, renewing a lease) holds one lock only and needs no order.
"""

from django.db.models import Model, QuerySet

LOCK_ORDER = (
    "billing.Service",
    "billing.Payment",
    "billing.Client",
    "provisioning.Operation",
    "provisioning.OperationAttempt",
)


def lock_objects(*querysets: QuerySet) -> list[list[Model]]:
    """Lock the rows of each queryset (inside a transaction) in LOCK_ORDER; return them in the order asked.

    `service, operation = lock_objects(Service.objects.filter(pk=a), Operation.objects.filter(pk=b))`
    gives two lists, whatever order the querysets are passed in.
    """
    rows: list[list[Model]] = [[] for _ in querysets]
    for index in sorted(range(len(querysets)), key=lambda i: _rank(querysets[i].model)):
        rows[index] = list(querysets[index].select_for_update(of=("self",)).order_by("pk"))
    return rows


def _rank(model: type[Model]) -> int:
    label = model._meta.concrete_model._meta.label
    if label not in LOCK_ORDER:
        raise ValueError(f"{label} has no place in billing.locks.LOCK_ORDER: add it there before locking it with others")
    return LOCK_ORDER.index(label)
