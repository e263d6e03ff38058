namespace AotEvents.Events;

/// <summary>The seven categories of SPEC §1. The numeric value indexes per-category state (files, masks).</summary>
public enum EventCategory : byte
{
    Console,
    Network,
    Page,
    Interaction,
    Liveview,
    Captcha,
    System,
}

public enum DetailLevel : byte
{
    Minimal,
    Standard,
    Verbose,
    Raw,
}

public enum SourceKind : byte
{
    Cdp,
    KernelApi,
    Extension,
    LocalProcess,
}

/// <summary>
/// Wire names of the enums, pre-encoded as UTF-8, and their parsers. Parsing works on the raw
/// (unescaped) UTF-8 value so the hot path never builds a string.
/// </summary>
public static class EventVocabulary
{
    public const int CategoryCount = 7;

    /// <summary>Bit mask with every category set.</summary>
    public const int AllCategoriesMask = (1 << CategoryCount) - 1;

    private static readonly byte[][] CategoryNames =
    [
        "console"u8.ToArray(), "network"u8.ToArray(), "page"u8.ToArray(), "interaction"u8.ToArray(),
        "liveview"u8.ToArray(), "captcha"u8.ToArray(), "system"u8.ToArray(),
    ];

    private static readonly string[] CategoryStrings =
        ["console", "network", "page", "interaction", "liveview", "captcha", "system"];

    private static readonly byte[][] DetailLevelNames =
        ["minimal"u8.ToArray(), "standard"u8.ToArray(), "verbose"u8.ToArray(), "raw"u8.ToArray()];

    private static readonly string[] DetailLevelStrings = ["minimal", "standard", "verbose", "raw"];

    private static readonly byte[][] SourceKindNames =
        ["cdp"u8.ToArray(), "kernel_api"u8.ToArray(), "extension"u8.ToArray(), "local_process"u8.ToArray()];

    private static readonly string[] SourceKindStrings = ["cdp", "kernel_api", "extension", "local_process"];

    public static ReadOnlySpan<byte> Utf8Name(EventCategory c) => CategoryNames[(int)c];
    public static ReadOnlySpan<byte> Utf8Name(DetailLevel d) => DetailLevelNames[(int)d];
    public static ReadOnlySpan<byte> Utf8Name(SourceKind k) => SourceKindNames[(int)k];
    public static string Name(EventCategory c) => CategoryStrings[(int)c];
    public static string Name(DetailLevel d) => DetailLevelStrings[(int)d];
    public static string Name(SourceKind k) => SourceKindStrings[(int)k];

    public static bool TryParseCategory(ReadOnlySpan<byte> utf8, out EventCategory category) =>
        TryFind(CategoryNames, utf8, out category);

    public static bool TryParseDetailLevel(ReadOnlySpan<byte> utf8, out DetailLevel level) =>
        TryFind(DetailLevelNames, utf8, out level);

    public static bool TryParseSourceKind(ReadOnlySpan<byte> utf8, out SourceKind kind) =>
        TryFind(SourceKindNames, utf8, out kind);

    public static bool TryParseCategory(string s, out EventCategory category) =>
        TryParseCategory(System.Text.Encoding.UTF8.GetBytes(s), out category);

    public static bool TryParseDetailLevel(string s, out DetailLevel level) =>
        TryParseDetailLevel(System.Text.Encoding.UTF8.GetBytes(s), out level);

    public static bool TryParseSourceKind(string s, out SourceKind kind) =>
        TryParseSourceKind(System.Text.Encoding.UTF8.GetBytes(s), out kind);

    /// <summary>
    /// SPEC §1: the category a type implies when the publisher gives none, from the prefix before
    /// the first '.'.
    /// </summary>
    public static EventCategory CategoryFromType(ReadOnlySpan<byte> type)
    {
        int dot = type.IndexOf((byte)'.');
        ReadOnlySpan<byte> prefix = dot < 0 ? type : type[..dot];
        if (prefix.SequenceEqual("console"u8)) return EventCategory.Console;
        if (prefix.SequenceEqual("network"u8)) return EventCategory.Network;
        if (prefix.SequenceEqual("page"u8) || prefix.SequenceEqual("navigation"u8) ||
            prefix.SequenceEqual("dom"u8) || prefix.SequenceEqual("target"u8)) return EventCategory.Page;
        if (prefix.SequenceEqual("interaction"u8) || prefix.SequenceEqual("layout"u8) ||
            prefix.SequenceEqual("scroll"u8)) return EventCategory.Interaction;
        if (prefix.SequenceEqual("liveview"u8)) return EventCategory.Liveview;
        if (prefix.SequenceEqual("captcha"u8)) return EventCategory.Captcha;
        return EventCategory.System;
    }

    private static bool TryFind<T>(byte[][] names, ReadOnlySpan<byte> utf8, out T value) where T : struct, Enum
    {
        for (int i = 0; i < names.Length; i++)
        {
            if (utf8.SequenceEqual(names[i]))
            {
                byte b = (byte)i;
                value = System.Runtime.CompilerServices.Unsafe.As<byte, T>(ref b); // no boxing on the hot path
                return true;
            }
        }
        value = default;
        return false;
    }
}
