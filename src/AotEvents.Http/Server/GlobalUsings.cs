// The SDK's implicit usings import System.Net.Http, whose HttpMethod class would make every use of our enum
// ambiguous in files that also import AotEvents.Http.Server. An alias wins over namespace imports.
global using HttpMethod = AotEvents.Http.Server.HttpMethod;
