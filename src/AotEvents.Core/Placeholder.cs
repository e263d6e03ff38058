namespace AotEvents; internal static class Placeholder { }
