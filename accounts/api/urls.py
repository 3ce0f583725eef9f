from django.urls import path

from . import views

urlpatterns = [
    path("sms-codes", views.SmsCodeView.as_view(), name="sms-codes"),
    path("signup", views.SignupView.as_view(), name="signup"),
    path("token", views.TokenView.as_view(), name="token"),
    path("token/refresh", views.TokenRefreshView.as_view(), name="token-refresh"),
    path("password-reset", views.PasswordResetView.as_view(), name="password-reset"),
]
