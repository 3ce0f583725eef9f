"""The bases of every API view: parsing with a serializer, and who may call."""

from rest_framework.exceptions import NotAuthenticated
from rest_framework.views import APIView

from .authentication import (
    CustomerTokenAuthentication,
    IsCustomer,
    IsStore,
    StoreAPIKeyAuthentication,
)


class ApiView(APIView):
    """Base of every API view: parse with a serializer, refuse bad input as a 400."""

    def parse(self, serializer_class, data=None):
        serializer = serializer_class(data=self.request.data if data is None else data)
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data

    def permission_denied(self, request, message=None, code=None):
        # DRF tells a caller no authenticator recognised only that credentials were "not
        # provided"; one who sent a customer token to a store's endpoint, or a key without
        # its prefix, needs to hear what this endpoint takes. The first authenticator says
        # it, as it names the scheme of the WWW-Authenticate header.
        if request.authenticators and not request.successful_authenticator:
            needed = getattr(request.authenticators[0], "credential_needed", None)
            raise NotAuthenticated(needed)
        super().permission_denied(request, message, code)


class StoreAPIView(ApiView):
    authentication_classes = [StoreAPIKeyAuthentication]
    permission_classes = [IsStore]

    @property
    def store(self):
        return self.request.user.store


class CustomerAPIView(ApiView):
    authentication_classes = [CustomerTokenAuthentication]
    permission_classes = [IsCustomer]
