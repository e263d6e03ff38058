namespace AotEvents.S2; internal static class Placeholder { }
