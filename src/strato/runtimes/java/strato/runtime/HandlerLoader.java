package strato.runtime;

import com.amazonaws.services.lambda.runtime.Context;
import com.amazonaws.services.lambda.runtime.RequestHandler;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.InputStream;
import java.io.OutputStream;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;
import java.lang.reflect.Modifier;
import java.lang.reflect.ParameterizedType;
import java.lang.reflect.Type;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;

/**
 * Resolves a handler string as Lambda's Java runtime does: {@code package.Class::method}, or
 * {@code package.Class} for the method {@code handleRequest}. The method is a public one of the
 * class (instance methods get one instance, made at INIT) taking, in order of preference,
 * {@code (InputStream, OutputStream, Context)}, {@code (InputStream, OutputStream)},
 * {@code (event, Context)}, {@code (event)} or {@code ()}; the event is deserialized into the
 * parameter's declared type (a {@code RequestHandler<I, O>}'s {@code I}) and the result
 * serialized to JSON by {@link Pojos}.
 */
final class HandlerLoader {
    private HandlerLoader() {
    }

    /** The handler {@code spec} names; ClassNotFoundException or NoSuchMethodException with
     * Lambda's messages when it names nothing that can be called. */
    static Handler load(String spec) throws Throwable {
        String className = spec;
        String methodName = "handleRequest";
        int separator = spec.indexOf("::");
        if (separator >= 0) {
            className = spec.substring(0, separator);
            methodName = spec.substring(separator + 2);
        }
        Class<?> type;
        try {
            type = Class.forName(className, true, ClassLoader.getSystemClassLoader());
        } catch (ClassNotFoundException e) {
            throw new ClassNotFoundException("Class not found: " + className, e);
        } catch (ExceptionInInitializerError e) {
            throw e.getCause() != null ? e.getCause() : e;
        }
        Method method = choose(type, methodName);
        if (method == null) {
            throw new NoSuchMethodException("No public method named " + methodName
                + " with appropriate method signature found on class " + type.getName());
        }
        Object instance = null;
        if (!Modifier.isStatic(method.getModifiers())) {
            try {
                var constructor = type.getDeclaredConstructor();
                constructor.setAccessible(true);
                instance = constructor.newInstance();
            } catch (InvocationTargetException e) {
                throw e.getCause();
            } catch (NoSuchMethodException e) {
                throw new NoSuchMethodException("Class " + type.getName()
                    + " has no public zero-argument constructor");
            }
        }
        method.setAccessible(true);
        return bind(type, method, instance);
    }

    private static Method choose(Class<?> type, String name) {
        List<Method> candidates = new ArrayList<>();
        for (Method method : type.getMethods()) {
            if (method.getName().equals(name) && kind(method) != null) {
                candidates.add(method);
            }
        }
        // Most parameters first; among equals, a concrete signature before a bridge (the
        // Object-typed method the compiler adds for RequestHandler<I, O>).
        candidates.sort(Comparator.comparingInt((Method m) -> -m.getParameterCount())
            .thenComparing(Method::isBridge));
        return candidates.isEmpty() ? null : candidates.get(0);
    }

    private enum Kind { STREAM, STREAM_CONTEXT, EVENT, EVENT_CONTEXT, NONE }

    private static Kind kind(Method method) {
        Class<?>[] p = method.getParameterTypes();
        switch (p.length) {
            case 0:
                return Kind.NONE;
            case 1:
                return p[0] == Context.class ? null : Kind.EVENT;
            case 2:
                if (p[0] == InputStream.class && p[1] == OutputStream.class) {
                    return Kind.STREAM;
                }
                return p[1] == Context.class ? Kind.EVENT_CONTEXT : null;
            case 3:
                return p[0] == InputStream.class && p[1] == OutputStream.class && p[2] == Context.class
                    ? Kind.STREAM_CONTEXT : null;
            default:
                return null;
        }
    }

    private static Handler bind(Class<?> type, Method method, Object instance) {
        Kind kind = kind(method);
        if (kind == Kind.STREAM || kind == Kind.STREAM_CONTEXT) {
            return (event, context) -> {
                ByteArrayOutputStream out = new ByteArrayOutputStream();
                Object[] args = kind == Kind.STREAM
                    ? new Object[] {new ByteArrayInputStream(event), out}
                    : new Object[] {new ByteArrayInputStream(event), out, context};
                call(method, instance, args);
                return out.toByteArray();
            };
        }
        Type eventType = kind == Kind.NONE ? null : eventType(type, method);
        return (event, context) -> {
            Object[] args;
            if (kind == Kind.NONE) {
                args = new Object[0];
            } else {
                Object input = Pojos.convert(Json.parse(new String(event, StandardCharsets.UTF_8)), eventType);
                args = kind == Kind.EVENT ? new Object[] {input} : new Object[] {input, context};
            }
            Object result = call(method, instance, args);
            return Json.write(Pojos.toPlain(result)).getBytes(StandardCharsets.UTF_8);
        };
    }

    /** The event parameter's type; for a bridge method, the {@code I} of RequestHandler<I, O>. */
    private static Type eventType(Class<?> type, Method method) {
        if (method.isBridge() && RequestHandler.class.isAssignableFrom(type)) {
            for (Class<?> c = type; c != null; c = c.getSuperclass()) {
                for (Type implemented : c.getGenericInterfaces()) {
                    if (implemented instanceof ParameterizedType p && p.getRawType() == RequestHandler.class) {
                        return p.getActualTypeArguments()[0];
                    }
                }
            }
        }
        return method.getGenericParameterTypes()[0];
    }

    private static Object call(Method method, Object instance, Object[] args) throws Throwable {
        try {
            return method.invoke(instance, args);
        } catch (InvocationTargetException e) {
            throw e.getCause();
        }
    }
}
