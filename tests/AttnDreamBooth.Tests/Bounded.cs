namespace AttnDreamBooth.Tests;

/// <summary>Runs work that could hang or blow up on a worker thread and fails the test if it outlives a generous bound.</summary>
public static class Bounded
{
    public static async Task<T> RunAsync<T>(Func<T> work, TimeSpan bound, string what)
    {
        var task = Task.Factory.StartNew(() => TensorRoots.Run(work), CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
        var finished = await Task.WhenAny(task, Task.Delay(bound));
        Assert.True(finished == task, $"{what} did not finish within {bound.TotalSeconds:F0} s");
        return await task;
    }
}
