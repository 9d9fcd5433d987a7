using AttnDreamBooth.Cli;

return await CliApp.RunAsync(args);
