from django_tasks import task

from billing.document_mail import document_email_send
from billing.notifications import notification_send


@task()
def send_notification(notification_id: int) -> None:
    notification_send(notification_id=notification_id)


@task()
def send_document(document_id: int) -> None:
    document_email_send(document_id=document_id)
