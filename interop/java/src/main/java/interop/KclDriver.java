package interop;
final class KclDriver { static void run(String[] a) {} }
