namespace AttnDreamBooth;

/// <summary>
/// The base of every exception type the library defines: bad input (a malformed or unsafe file, an invalid config,
/// plan or option set, an unusable image or concept token) and bad state (a scheduler used out of order, a diverged
/// run, a concept that failed half-way through loading). Catch it to handle all of them at once; the message names the
/// file, argument or setting at fault. A null or out-of-range argument is reported with the standard
/// <see cref="ArgumentException"/> family, and cancellation with <see cref="OperationCanceledException"/>.
/// </summary>
public abstract class AttnDreamBoothException : Exception
{
    /// <summary>Creates the exception.</summary>
    /// <param name="message">What is wrong, naming the file, argument or setting.</param>
    /// <param name="innerException">The underlying failure, if any.</param>
    protected AttnDreamBoothException(string message, Exception? innerException = null)
        : base(message, innerException)
    {
    }
}
