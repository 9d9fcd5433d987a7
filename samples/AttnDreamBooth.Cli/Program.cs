using AttnDreamBooth.Cli;

using var interruption = new Interruption();
return interruption.ExitCode(await CliApp.RunAsync(args, console: null, interruption.Token));
