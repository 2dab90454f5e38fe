from django import template

from billing.selectors import service_billing_summary

register = template.Library()


@register.simple_tag
def service_billing(service):
    """`{% service_billing service as billing %}`: where the service stands in its billing cycle (no query)."""
    return service_billing_summary(service=service)
