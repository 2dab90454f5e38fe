"""Billing's announcements; the provisioning app listens and turns them into panel operations."""

from django.dispatch import Signal

# A service needs something done in its panel: sent inside the transaction that decided it,
# with service, action (billing.choices.PanelAction), by, reason and payload.
panel_action_requested = Signal()
