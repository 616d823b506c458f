package interop;

import java.util.Arrays;

/** Entry point: {@code java -cp ... interop.Main <sdk|kpl|kcl> args...}. */
public final class Main {
    private Main() {}

    public static void main(String[] args) throws Exception {
        if (args.length == 0) {
            System.err.println("usage: interop.Main <sdk|kpl|kcl> args...");
            System.exit(2);
        }
        String[] rest = Arrays.copyOfRange(args, 1, args.length);
        switch (args[0]) {
            case "sdk" -> SdkDriver.run(rest);
            case "kpl" -> KplDriver.run(rest);
            case "kcl" -> KclDriver.run(rest);
            default -> {
                System.err.println("unknown driver " + args[0]);
                System.exit(2);
            }
        }
        // Netty and the KCL leave non-daemon threads behind; the drivers are done.
        System.out.flush();
        System.exit(0);
    }

    /** Print one whole line for the Rust test to read. */
    static synchronized void say(String line) {
        System.out.println(line);
        System.out.flush();
    }

    /** Fail the driver with {@code message} unless {@code cond} holds. */
    static void check(boolean cond, String message) {
        if (!cond) {
            throw new IllegalStateException("check failed: " + message);
        }
    }
}
