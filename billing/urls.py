from django.conf.urls.i18n import i18n_patterns
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from billing import api_token_views, document_views, profile, views

# The language switch lives inside the language prefix too: Django can only translate the
# page address it returns to when it resolves that address in the page's own language.
urlpatterns = [
    path("payments/callback/<slug:gateway>/", views.gateway_callback, name="gateway_callback"),
    path("api/", include("billing.api.urls")),
]
urlpatterns += i18n_patterns(
    path("i18n/setlang/", views.language_switch, name="set_language"),
    path("admin/", admin.site.urls),
    path("", views.shop, name="shop"),
    path("order/<int:tariff_id>/", views.order, name="order"),
    path("accounts/register/", views.register, name="register"),
    path("accounts/login/", views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("accounts/password_change/", views.PasswordChangeView.as_view(), name="password_change"),
    path("accounts/reset/<uidb64>/<token>/", views.PasswordResetConfirmView.as_view(), name="password_reset_confirm"),
    path("accounts/", include("django.contrib.auth.urls")),
    path("account/", views.client_area, name="client_area"),
    path("account/balance/", views.balance, name="balance"),
    path("account/payments/<int:payment_id>/", views.payment_detail, name="payment_detail"),
    path("account/orders/", views.orders, name="orders"),
    path("account/services/<int:service_id>/", views.service_detail, name="service_detail"),
    path("account/services/<int:service_id>/pay/", views.service_pay_view, name="service_pay"),
    path("account/services/<int:service_id>/action/", views.service_action, name="service_action"),
    path("account/services/<int:service_id>/auto-renew/", views.service_auto_renew, name="service_auto_renew"),
    path("account/services/<int:service_id>/renew/", views.service_renew_view, name="service_renew"),
    path("account/services/<int:service_id>/change/", views.service_change_view, name="service_change"),
    path("account/services/<int:service_id>/change/preview/", views.service_change_preview, name="service_change_preview"),
    path("account/services/<int:service_id>/panel/", views.service_panel_login, name="service_panel_login"),
    path("account/notifications/", views.notifications, name="notifications"),
    path("account/profile/", profile.profile, name="profile"),
    path("account/api-tokens/", api_token_views.api_tokens, name="api_tokens"),
    path("account/api-tokens/<int:token_id>/revoke/", api_token_views.api_token_revoke, name="api_token_revoke"),
    path("account/invoices/", document_views.documents, name="documents"),
    path("account/invoices/<int:document_id>/", document_views.document_detail, name="document_detail"),
    path("account/invoices/<int:document_id>/pdf/", document_views.document_download, name="document_download"),
    prefix_default_language=False,
)

# An unhandled error under /api/ answers the API's JSON error shape; the pages keep Django's 500 page.
handler500 = "billing.api.errors.server_error"
