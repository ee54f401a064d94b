"""WhiteNoise, able to sit in an async middleware chain.

WhiteNoise's middleware is sync-only. Under ASGI one sync-only middleware
splits Django's chain in two: every request hopped to a thread for it, back
to the event loop for the async-capable middleware below it, and to a thread
again for the view (four thread switches and a new thread per request; issue
7 measured it as most of a publish request's wall time). This subclass
answers async requests on the event loop: outside `STATIC_URL` it only looks
the path up in WhiteNoise's table and awaits the rest of the chain; a static
file is still served by WhiteNoise's own code, in a thread.
"""

from asgiref.sync import iscoroutinefunction, markcoroutinefunction, sync_to_async
from whitenoise.middleware import WhiteNoiseMiddleware


class StaticFilesMiddleware(WhiteNoiseMiddleware):
    sync_capable = True
    async_capable = True

    def __init__(self, get_response) -> None:
        super().__init__(get_response)
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request):
        if self.is_async:
            return self._acall(request)
        return super().__call__(request)

    async def _acall(self, request):
        if self.autorefresh:  # development: looks on disk
            static_file = await sync_to_async(self.find_file, thread_sensitive=False)(request.path_info)
        else:
            static_file = self.files.get(request.path_info)
        if static_file is not None:
            return await sync_to_async(self.serve, thread_sensitive=False)(static_file, request)
        return await self.get_response(request)
