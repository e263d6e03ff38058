namespace AotEvents.Http.Server;

/// <summary>
/// Request method. Anything that is not one of the listed methods (including a lower-case spelling:
/// methods are case-sensitive) is <see cref="Other"/>; <see cref="HttpRequest.RawMethod"/> has the bytes.
/// </summary>
/// <remarks>
/// The SDK's implicit usings bring in <c>System.Net.Http.HttpMethod</c>; GlobalUsings.cs aliases the name to this
/// enum for the whole AotEvents.Http project. Other projects need the same alias or <c>&lt;Using Remove="System.Net.Http" /&gt;</c>.
/// </remarks>
public enum HttpMethod : byte
{
    Get,
    Post,
    Put,
    Delete,
    Head,
    Options,
    Patch,
    Other,
}
