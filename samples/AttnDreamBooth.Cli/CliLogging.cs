using System.CommandLine;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Spectre.Console;

namespace AttnDreamBooth.Cli;

/// <summary>
/// With <c>--verbose</c>, the library's own log lines (what was loaded, each stage's settings, checkpoints, generation
/// settings) are shown between the command's output; without it they are dropped. They go through the command's
/// console, so they interleave correctly with progress bars and tests can read them.
/// </summary>
internal static class CliLogging
{
    /// <summary>The logger factory for a command: the console at Information level with <c>--verbose</c>, none otherwise.</summary>
    public static ILoggerFactory For(IAnsiConsole console, ParseResult parse) =>
        parse.GetValue(CliApp.Verbose)
            ? LoggerFactory.Create(builder => builder.SetMinimumLevel(LogLevel.Information).AddProvider(new ConsoleLogProvider(console)))
            : NullLoggerFactory.Instance;

    private sealed class ConsoleLogProvider(IAnsiConsole console) : ILoggerProvider
    {
        public ILogger CreateLogger(string categoryName) => new ConsoleLog(console, categoryName[(categoryName.LastIndexOf('.') + 1)..]);

        public void Dispose()
        {
        }
    }

    private sealed class ConsoleLog(IAnsiConsole console, string category) : ILogger
    {
        // One console, several threads (training runs on its own thread): whole lines only.
        private static readonly Lock Gate = new();

        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Information;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (!IsEnabled(logLevel)) return;
            string level = logLevel switch
            {
                LogLevel.Information => "info",
                LogLevel.Warning => "warn",
                LogLevel.Error => "error",
                _ => "crit",
            };
            string line = $"[{level}] {category}: {formatter(state, exception)}";
            lock (Gate) console.MarkupLine($"[grey]{Markup.Escape(line)}[/]");
        }
    }
}
