using AttnDreamBooth.Cli;

using var interruption = new Interruption();
return await CliApp.RunAsync(args, console: null, interruption.Token);
