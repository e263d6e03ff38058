using AotEvents.Http.Server;
using AotEvents.Pipeline;

namespace AotEvents.Http.Handlers;

/// <summary><c>POST /events/start</c>, <c>GET /events/session</c>, <c>POST /events/stop</c> (SPEC §2).</summary>
internal sealed class SessionHandlers(DaemonContext context)
{
    public void Start(HttpRequest request, HttpResponse response)
    {
        SessionOutcome outcome = context.Pipeline.StartSession(request.Body.Span);
        if (outcome.Session is null) Responses.Message(response, outcome.Status, outcome.Message!);
        else Responses.Session(response, outcome.Status, outcome.Session);
    }

    public void Get(HttpResponse response)
    {
        if (context.Pipeline.ActiveSession is { } session) Responses.Session(response, 200, session);
        else Responses.Message(response, 404, "no active capture session");
    }

    public void Stop(HttpResponse response)
    {
        SessionOutcome outcome = context.Pipeline.StopSession();
        if (outcome.Session is null) Responses.Message(response, outcome.Status, outcome.Message!);
        else Responses.Session(response, outcome.Status, outcome.Session);
    }
}
