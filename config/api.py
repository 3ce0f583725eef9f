from rest_framework.views import APIView


class ApiView(APIView):
    """Base of every API view: parse with a serializer, refuse bad input as a 400."""

    def parse(self, serializer_class, data=None):
        serializer = serializer_class(data=self.request.data if data is None else data)
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data
