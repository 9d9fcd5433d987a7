namespace AttnDreamBooth.Personalization;

/// <summary>A <see cref="StagePlan"/> (or one of its stages) holds an invalid setting. Names the stage and the setting.</summary>
public sealed class InvalidStagePlanException : AttnDreamBoothException
{
    /// <summary>Creates the exception.</summary>
    public InvalidStagePlanException(TrainingStage? stage, string setting, string problem)
        : base(stage is null ? $"Stage plan, {setting}: {problem}" : $"Stage {(int)stage} ({stage}), {setting}: {problem}")
    {
        ParamName = setting;
        Stage = stage;
        Setting = setting;
        Problem = problem;
    }

    /// <summary>The stage at fault, or null for a plan-wide setting.</summary>
    public TrainingStage? Stage { get; }

    /// <summary>The setting at fault (a property name such as <c>LearningRate</c> or <c>Optimizer.Beta1</c>).</summary>
    public string Setting { get; }

    /// <summary>What is wrong.</summary>
    public string Problem { get; }

    /// <summary>The name of the argument at fault.</summary>
    public string? ParamName { get; }
}
