namespace AotEvents.Http; internal static class Placeholder { }
