/**
 * Stands in for the Java agent LocalStack starts DynamoDB Local with (`-javaagent:…`), which
 * it would download from outside the package registries. That agent only lifts DynamoDB
 * Local's limit of 20 global secondary indexes per table; our tables have two, so this one
 * does nothing.
 */
public final class PlaceholderAgent {
    private PlaceholderAgent() {}

    public static void premain(String arguments) {}
}
