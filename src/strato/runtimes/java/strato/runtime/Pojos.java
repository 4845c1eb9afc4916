package strato.runtime;

import java.lang.reflect.Array;
import java.lang.reflect.Constructor;
import java.lang.reflect.Field;
import java.lang.reflect.GenericArrayType;
import java.lang.reflect.Method;
import java.lang.reflect.Modifier;
import java.lang.reflect.ParameterizedType;
import java.lang.reflect.RecordComponent;
import java.lang.reflect.Type;
import java.lang.reflect.TypeVariable;
import java.lang.reflect.WildcardType;
import java.math.BigDecimal;
import java.math.BigInteger;
import java.util.ArrayList;
import java.util.Base64;
import java.util.Collection;
import java.util.Date;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;

/**
 * Events into handler parameter types and results into JSON values, by the rules Lambda's
 * Jackson-based serializer follows for the common cases: a POJO is read through a no-argument
 * constructor and its setters or public fields (member names matched case-insensitively,
 * unknown members ignored) and written through its getters ({@code getX}, {@code isX}) and
 * public fields; records by their components; enums by name; {@code byte[]} as base64;
 * {@code Date} as epoch milliseconds. Not supported: Jackson annotations, polymorphic types,
 * java.time types, custom (de)serializers.
 */
final class Pojos {
    private static final int MAX_DEPTH = 200;

    private Pojos() {
    }

    /** {@code plain} (a value {@link Json#parse} made) as a {@code target}. */
    static Object convert(Object plain, Type target) throws ReflectiveOperationException {
        Class<?> raw = rawClass(target);
        if (plain == null) {
            return raw.isPrimitive() ? convert(0, raw) : null;
        }
        if (raw == Object.class) {
            return plain;
        }
        if (raw == String.class || raw == CharSequence.class) {
            if (plain instanceof Map || plain instanceof List) {
                throw mismatch(raw, plain);
            }
            return plain.toString();
        }
        if (raw == boolean.class || raw == Boolean.class) {
            if (plain instanceof Boolean) {
                return plain;
            }
            if (plain instanceof String s && (s.equals("true") || s.equals("false"))) {
                return Boolean.valueOf(s);
            }
            throw mismatch(raw, plain);
        }
        if (raw.isPrimitive() || Number.class.isAssignableFrom(raw)) {
            return number(plain, raw);
        }
        if (raw == char.class || raw == Character.class) {
            if (plain instanceof String s && s.length() == 1) {
                return s.charAt(0);
            }
            throw mismatch(raw, plain);
        }
        if (raw.isEnum()) {
            for (Object constant : raw.getEnumConstants()) {
                if (((Enum<?>) constant).name().equals(plain.toString())) {
                    return constant;
                }
            }
            throw new IllegalArgumentException("Cannot deserialize value of type `" + raw.getName()
                + "` from String \"" + plain + "\": not one of the values accepted for Enum class");
        }
        if (raw == byte[].class && plain instanceof String s) {
            return Base64.getDecoder().decode(s);
        }
        if (raw == Date.class && plain instanceof Number n) {
            return new Date(n.longValue());
        }
        if (Map.class.isAssignableFrom(raw)) {
            if (!(plain instanceof Map<?, ?> map)) {
                throw mismatch(raw, plain);
            }
            Type valueType = typeArgument(target, 1);
            Map<Object, Object> out = new LinkedHashMap<>();
            for (Map.Entry<?, ?> entry : map.entrySet()) {
                out.put(entry.getKey(), convert(entry.getValue(), valueType));
            }
            return out;
        }
        if (Collection.class.isAssignableFrom(raw) || raw.isArray()) {
            if (!(plain instanceof List<?> list)) {
                throw mismatch(raw, plain);
            }
            Type itemType = raw.isArray() ? componentType(target) : typeArgument(target, 0);
            if (raw.isArray()) {
                Object array = Array.newInstance(rawClass(itemType), list.size());
                for (int i = 0; i < list.size(); i++) {
                    Array.set(array, i, convert(list.get(i), itemType));
                }
                return array;
            }
            Collection<Object> out = Set.class.isAssignableFrom(raw) ? new LinkedHashSet<>()
                : new ArrayList<>();
            for (Object item : list) {
                out.add(convert(item, itemType));
            }
            return out;
        }
        if (!(plain instanceof Map<?, ?> members)) {
            throw mismatch(raw, plain);
        }
        return pojo(members, raw);
    }

    private static Object pojo(Map<?, ?> members, Class<?> type) throws ReflectiveOperationException {
        if (type.isRecord()) {
            RecordComponent[] components = type.getRecordComponents();
            Object[] values = new Object[components.length];
            Class<?>[] types = new Class<?>[components.length];
            for (int i = 0; i < components.length; i++) {
                types[i] = components[i].getType();
                values[i] = convert(member(members, components[i].getName()), components[i].getGenericType());
            }
            Constructor<?> constructor = type.getDeclaredConstructor(types);
            constructor.setAccessible(true);
            return constructor.newInstance(values);
        }
        if (type.isInterface() || Modifier.isAbstract(type.getModifiers())) {
            throw new IllegalArgumentException("Cannot construct instance of `" + type.getName()
                + "` (abstract types either need to be mapped to concrete types)");
        }
        Constructor<?> constructor;
        try {
            constructor = type.getDeclaredConstructor();
        } catch (NoSuchMethodException e) {
            throw new IllegalArgumentException("Cannot construct instance of `" + type.getName()
                + "` (no Creators, like default constructor, exist)", e);
        }
        constructor.setAccessible(true);
        Object instance = constructor.newInstance();
        for (Map.Entry<?, ?> entry : members.entrySet()) {
            String name = String.valueOf(entry.getKey());
            Method setter = setter(type, name);
            if (setter != null) {
                setter.invoke(instance, convert(entry.getValue(), setter.getGenericParameterTypes()[0]));
                continue;
            }
            Field field = publicField(type, name);
            if (field != null) {
                field.set(instance, convert(entry.getValue(), field.getGenericType()));
            }
        }
        return instance;
    }

    private static Object member(Map<?, ?> members, String name) {
        for (Map.Entry<?, ?> entry : members.entrySet()) {
            if (String.valueOf(entry.getKey()).equalsIgnoreCase(name)) {
                return entry.getValue();
            }
        }
        return null;
    }

    private static Method setter(Class<?> type, String name) {
        for (Method method : type.getMethods()) {
            if (method.getParameterCount() == 1 && !Modifier.isStatic(method.getModifiers())
                && method.getName().length() > 3 && method.getName().startsWith("set")
                && method.getName().substring(3).equalsIgnoreCase(name)) {
                return method;
            }
        }
        return null;
    }

    private static Field publicField(Class<?> type, String name) {
        for (Field field : type.getFields()) {
            if (!Modifier.isStatic(field.getModifiers()) && !Modifier.isFinal(field.getModifiers())
                && field.getName().equalsIgnoreCase(name)) {
                return field;
            }
        }
        return null;
    }

    private static Object number(Object plain, Class<?> raw) {
        Number n;
        if (plain instanceof Number number) {
            n = number;
        } else if (plain instanceof String s) {
            try {
                n = new BigDecimal(s.trim());
            } catch (NumberFormatException e) {
                throw mismatch(raw, plain);
            }
        } else {
            throw mismatch(raw, plain);
        }
        if (raw == int.class || raw == Integer.class) {
            return n.intValue();
        }
        if (raw == long.class || raw == Long.class) {
            return n.longValue();
        }
        if (raw == double.class || raw == Double.class) {
            return n.doubleValue();
        }
        if (raw == float.class || raw == Float.class) {
            return n.floatValue();
        }
        if (raw == short.class || raw == Short.class) {
            return n.shortValue();
        }
        if (raw == byte.class || raw == Byte.class) {
            return n.byteValue();
        }
        if (raw == BigInteger.class) {
            return new BigDecimal(n.toString()).toBigInteger();
        }
        if (raw == BigDecimal.class) {
            return new BigDecimal(n.toString());
        }
        return n;
    }

    private static IllegalArgumentException mismatch(Class<?> raw, Object plain) {
        String kind = plain instanceof Map ? "Object value" : plain instanceof List ? "Array value"
            : plain.getClass().getSimpleName() + " value";
        return new IllegalArgumentException("Cannot deserialize value of type `" + raw.getName()
            + "` from " + kind);
    }

    static Class<?> rawClass(Type type) {
        if (type instanceof Class<?> c) {
            return c;
        }
        if (type instanceof ParameterizedType p) {
            return rawClass(p.getRawType());
        }
        if (type instanceof GenericArrayType g) {
            return Array.newInstance(rawClass(g.getGenericComponentType()), 0).getClass();
        }
        if (type instanceof WildcardType w) {
            return rawClass(w.getUpperBounds()[0]);
        }
        if (type instanceof TypeVariable<?> v) {
            return rawClass(v.getBounds()[0]);
        }
        return Object.class;
    }

    private static Type typeArgument(Type type, int index) {
        if (type instanceof ParameterizedType p && p.getActualTypeArguments().length > index) {
            return p.getActualTypeArguments()[index];
        }
        return Object.class;
    }

    private static Type componentType(Type type) {
        if (type instanceof GenericArrayType g) {
            return g.getGenericComponentType();
        }
        return rawClass(type).getComponentType();
    }

    /** {@code value} (a handler's result) as a plain value for {@link Json#write}. */
    static Object toPlain(Object value) throws ReflectiveOperationException {
        return toPlain(value, 0);
    }

    private static Object toPlain(Object value, int depth) throws ReflectiveOperationException {
        if (depth > MAX_DEPTH) {
            throw new IllegalArgumentException("Infinite recursion (StackOverflowError): the result "
                + "refers to itself");
        }
        if (value == null || value instanceof String || value instanceof Boolean
            || value instanceof Number) {
            return value;
        }
        if (value instanceof Character || value instanceof CharSequence) {
            return value.toString();
        }
        if (value instanceof Enum<?> e) {
            return e.name();
        }
        if (value instanceof byte[] bytes) {
            return Base64.getEncoder().encodeToString(bytes);
        }
        if (value instanceof Date date) {
            return date.getTime();
        }
        if (value instanceof Map<?, ?> map) {
            Map<String, Object> out = new LinkedHashMap<>();
            for (Map.Entry<?, ?> entry : map.entrySet()) {
                out.put(String.valueOf(entry.getKey()), toPlain(entry.getValue(), depth + 1));
            }
            return out;
        }
        if (value instanceof Iterable<?> items) {
            List<Object> out = new ArrayList<>();
            for (Object item : items) {
                out.add(toPlain(item, depth + 1));
            }
            return out;
        }
        if (value.getClass().isArray()) {
            List<Object> out = new ArrayList<>();
            for (int i = 0; i < Array.getLength(value); i++) {
                out.add(toPlain(Array.get(value, i), depth + 1));
            }
            return out;
        }
        Map<String, Object> out = new LinkedHashMap<>();
        Class<?> type = value.getClass();
        if (type.isRecord()) {
            for (RecordComponent component : type.getRecordComponents()) {
                Method accessor = component.getAccessor();
                accessor.setAccessible(true);
                out.put(component.getName(), toPlain(accessor.invoke(value), depth + 1));
            }
            return out;
        }
        for (Field field : type.getFields()) {
            if (!Modifier.isStatic(field.getModifiers())) {
                out.put(field.getName(), toPlain(field.get(value), depth + 1));
            }
        }
        for (Method method : type.getMethods()) {
            String property = property(method);
            if (property != null && !out.containsKey(property)) {
                method.setAccessible(true);
                out.put(property, toPlain(method.invoke(value), depth + 1));
            }
        }
        return out;
    }

    /** The property a public getter reads (Jackson's names: getURL → url), else null. */
    private static String property(Method method) {
        if (Modifier.isStatic(method.getModifiers()) || method.getParameterCount() != 0
            || method.getReturnType() == void.class || method.getDeclaringClass() == Object.class) {
            return null;
        }
        String name = method.getName();
        String rest;
        if (name.startsWith("get") && name.length() > 3) {
            rest = name.substring(3);
        } else if (name.startsWith("is") && name.length() > 2
                   && (method.getReturnType() == boolean.class || method.getReturnType() == Boolean.class)) {
            rest = name.substring(2);
        } else {
            return null;
        }
        int upper = 0;
        while (upper < rest.length() && Character.isUpperCase(rest.charAt(upper))) {
            upper++;
        }
        if (upper == 0) {
            return rest;
        }
        return rest.substring(0, upper).toLowerCase(Locale.ROOT) + rest.substring(upper);
    }
}
