namespace AotEvents.Http.Server;

/// <summary>The application side of <see cref="HttpServer"/>.</summary>
public interface IHttpHandler
{
    /// <summary>
    /// Called once per complete request (head and whole body received), in order, per connection.
    /// The answer goes through <paramref name="response"/>: exactly one <see cref="HttpResponse.Write"/> or
    /// <see cref="HttpResponse.StartStreamingAsync"/>. <paramref name="request"/> is backed by pooled memory and
    /// is valid only until this call completes (or until <see cref="HttpResponse.StartStreamingAsync"/>).
    /// An exception becomes a 500 (if nothing was written yet), is logged, and closes the connection.
    /// </summary>
    ValueTask HandleAsync(HttpRequest request, HttpResponse response);
}
