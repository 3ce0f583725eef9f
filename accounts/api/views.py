from django.utils import translation
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.throttling import BaseThrottle

from accounts import services
from core.api.views import ApiView
from core.errors import error_responses

from . import serializers as s

TOKENS_EXAMPLE = OpenApiExample(
    "Tokens",
    response_only=True,
    value={"access": "eyJhbGciOiJIUzI1NiIs…", "refresh": "eyJhbGciOiJIUzI1NiIs…"},
)

WRONG_CODES_THROTTLED = (
    "A wrong code is 422 `invalid_code`; past the wrong codes a phone may send in an hour, "
    "every code for it is refused with 429 until the hour is over."
)


def client_ip(request) -> str:
    """The caller's address, trusting X-Forwarded-For only behind NUM_PROXIES proxies."""
    return BaseThrottle().get_ident(request)


def requested_language(request) -> str:
    """The language the request's Accept-Language chose, or "" when it named none we
    speak: the shop's default is no one's choice, so it is not recorded as a member's."""
    asked = {
        tag.split(";")[0].strip().split("-")[0]
        for tag in request.META.get("HTTP_ACCEPT_LANGUAGE", "").lower().split(",")
    }
    language = translation.get_language()
    return language if language.split("-")[0] in asked else ""


class AuthAPIView(ApiView):
    authentication_classes = []
    permission_classes = [AllowAny]


class SmsCodeView(AuthAPIView):
    @extend_schema(
        operation_id="sms_code_request",
        summary="Send a sign-up or password-reset code by SMS",
        description=(
            "Answers 202 alike for registered and unknown numbers. Capped per phone "
            "(1 a minute, 5 an hour), per client IP and in total; past a cap, 429. "
            "Numbers outside the served countries are refused with 400 `invalid_phone`."
        ),
        request=s.SmsCodeInput,
        responses={202: s.AcceptedOutput, **error_responses(400, 429)},
        examples=[
            OpenApiExample(
                "Sign-up code",
                request_only=True,
                value={"phone": "13800138000", "purpose": "signup"},
            ),
            OpenApiExample(
                "Accepted",
                response_only=True,
                status_codes=["202"],
                value={"detail": "If this number can use the service, a text is on its way."},
            ),
        ],
        tags=["customer auth"],
    )
    def post(self, request):
        data = self.parse(s.SmsCodeInput)
        services.sms_code_request(
            **data, client_ip=client_ip(request), language=requested_language(request)
        )
        detail = _("If this number can use the service, a text is on its way.")
        return Response({"detail": detail}, status=202)


class SignupView(AuthAPIView):
    @extend_schema(
        operation_id="signup",
        summary="Sign up with the SMS code; points earned in store before are there",
        description=WRONG_CODES_THROTTLED,
        request=s.SignupInput,
        responses={201: s.TokensOutput, **error_responses(400, 422, 429)},
        examples=[
            OpenApiExample(
                "Sign-up",
                request_only=True,
                value={"phone": "13800138000", "code": "483920", "password": "a long passphrase"},
            ),
            TOKENS_EXAMPLE,
        ],
        tags=["customer auth"],
    )
    def post(self, request):
        tokens = services.user_signup(
            **self.parse(s.SignupInput), language=requested_language(request)
        )
        return Response(tokens, status=201)


class TokenView(AuthAPIView):
    @extend_schema(
        operation_id="token_obtain",
        summary="Log in with phone and password",
        description="Failed logins are counted per phone and per client IP; past the limit, 429.",
        request=s.TokenInput,
        responses={200: s.TokensOutput, **error_responses(400, 401, 429)},
        examples=[
            OpenApiExample(
                "Login",
                request_only=True,
                value={"phone": "+8613800138000", "password": "a long passphrase"},
            ),
            TOKENS_EXAMPLE,
        ],
        tags=["customer auth"],
    )
    def post(self, request):
        data = self.parse(s.TokenInput)
        return Response(services.tokens_for_login(**data, client_ip=client_ip(request)))


class TokenRefreshView(AuthAPIView):
    @extend_schema(
        operation_id="token_refresh",
        summary="A new access token for a refresh token",
        request=s.RefreshInput,
        responses={200: s.AccessOutput, **error_responses(400, 401)},
        examples=[
            OpenApiExample(
                "Refresh", request_only=True, value={"refresh": "eyJhbGciOiJIUzI1NiIs…"}
            ),
            OpenApiExample(
                "New access token", response_only=True, value={"access": "eyJhbGciOiJIUzI1NiIs…"}
            ),
        ],
        tags=["customer auth"],
    )
    def post(self, request):
        refresh = self.parse(s.RefreshInput)["refresh"]
        return Response({"access": services.access_token_refresh(refresh=refresh)})


class PasswordResetView(AuthAPIView):
    @extend_schema(
        operation_id="password_reset",
        summary="Set a new password with a reset code; every earlier token stops working",
        description=WRONG_CODES_THROTTLED,
        request=s.PasswordResetInput,
        responses={204: None, **error_responses(400, 422, 429)},
        examples=[
            OpenApiExample(
                "Reset",
                request_only=True,
                value={
                    "phone": "13800138000",
                    "code": "120394",
                    "new_password": "another passphrase",
                },
            ),
        ],
        tags=["customer auth"],
    )
    def post(self, request):
        services.password_reset(**self.parse(s.PasswordResetInput))
        return Response(status=204)
